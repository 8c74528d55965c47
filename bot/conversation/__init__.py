"""The conversation's language layer: normalise inbound text, tell what it asks for, and
word the replies in the customer's language. Pure functions; no I/O beyond reading `locales/`.
"""
