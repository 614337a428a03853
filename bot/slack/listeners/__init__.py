"""One module per group of Slack listeners, registered by :mod:`bot.slack.app`."""
