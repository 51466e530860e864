"""Training and evaluation on Lightning: the LightningModule holds the science, the Trainer the engineering."""
