"""The Slack app: the Bolt app and its listeners, rendering, the bot's state, the server and workers."""
