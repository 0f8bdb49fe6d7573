"""RQ jobs. They may import webapp (models, validation); webapp reaches them
only by enqueueing them by name."""
