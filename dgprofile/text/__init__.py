"""How quantities are written for people: one formatter per kind of quantity, shared by every layer."""
