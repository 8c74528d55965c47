"""Campaigns, their segments and A/B experiments."""
