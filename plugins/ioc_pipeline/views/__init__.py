"""Views: the indicator refresh and the cross-source reconciliation."""
