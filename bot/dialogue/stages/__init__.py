"""The routing stages, one module each, in the order ``bot/dialogue/router.py`` runs them."""
