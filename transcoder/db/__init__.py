"""Records of videos, their renditions and previews (SQLModel; SQLite or PostgreSQL)."""
