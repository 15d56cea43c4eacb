"""HTML pages: the Jinja environment, the result, fleet and compare pages and their charts."""
