"""dgprofile: will DiffusionGemma really be faster than autoregressive Gemma 4 on this machine?"""

__version__ = "0.1.0"
