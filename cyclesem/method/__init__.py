"""The method: the LightningModule and what it is made of (losses, classifier copies, image pool, metrics)."""
