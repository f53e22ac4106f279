"""The embedded simulated cloud: OpenStack REST APIs on loopback, from a seeded fleet."""
