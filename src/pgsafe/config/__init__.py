"""Settings: defaults < config file < PGSAFE_* environment < command-line flags."""

from pgsafe.config.settings import Settings, load_settings, state_home

__all__ = ["Settings", "load_settings", "state_home"]
