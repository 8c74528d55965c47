"""Outbound integrations: the CRM webhooks, a subscriber to domain events."""
