"""The daily digest: building it (stories, what changed), its schedule, delivery and the scheduler."""
