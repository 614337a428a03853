"""sitrep's talking half: answers, summaries, digests, the Slack app and the command line."""
