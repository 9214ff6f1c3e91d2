"""Storage: SQLAlchemy tables, the database handle, Alembic migrations, blob files."""
