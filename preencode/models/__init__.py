"""Models: autoencoder configs and networks, bottlenecks, strict checkpoint loading."""
