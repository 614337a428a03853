"""The feed registry: which RSS/Atom feeds are polled and what was seen."""
