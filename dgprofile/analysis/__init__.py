"""Figures worked out from result files for the fleet and compare pages: computed here, rendered in pages."""
