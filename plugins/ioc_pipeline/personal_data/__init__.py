"""Personal data: CCCD parsing and the keyed pseudonymisation of personal IDs."""
