"""Reference data: administrative units of both schemes and the commune mapping."""
