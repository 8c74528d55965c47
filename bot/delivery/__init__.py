"""Getting messages out and their receipts in: the sender, claims, dispatch, rate
limit, receipts, providers."""
