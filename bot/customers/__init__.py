"""Customers as an admin manages them: creation, CSV import and export."""
