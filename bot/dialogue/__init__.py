"""One conversation turn: the manager, its stages, forms, actions, handoff and templates."""
