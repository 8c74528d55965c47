"""Configuration, models and the plain building blocks everything else stands on."""
