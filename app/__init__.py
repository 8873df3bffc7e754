"""Quintet: five backend services in one Litestar application."""
