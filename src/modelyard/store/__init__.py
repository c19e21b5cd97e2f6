"""Storage below the backends: the metadata database, its migrations, and file storage."""
