"""How answers look: Slack mrkdwn and blocks, and plain terminal text."""
