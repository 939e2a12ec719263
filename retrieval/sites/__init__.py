"""Web pages, sitemaps and help-center sites as FAQ sources, crawled at `bot train` only."""
