"""The traffic controller and the A/B/n service (``kubectl iter8 controller serve``).

Empty until the controller lands; it will contribute its commands through ``iter8_register_commands``.
"""
