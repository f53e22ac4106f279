"""Alerts: lifecycle (fire, dedupe, acknowledge, silence, resolve) and routing (webhook,
e-mail, Alertmanager), in Alertmanager's words."""
