"""Declaration: the source catalog (include/sources.yaml) as typed objects."""
