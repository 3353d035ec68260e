"""The reminder dispatcher: workflow, templates, channels, inbound replies, tokens and KPIs."""
