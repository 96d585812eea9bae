"""The spitikos platform: one ComponentResource per part, and the settings they are built from."""
