"""Where state lives: the metadata database, the artifact store, the job queue.

Owns: the SQLAlchemy engine and sessions (:mod:`.database`), the ORM tables
(:mod:`.orm`) and the named shapes of the JSON documents stored in them
(:mod:`.documents`), the Alembic migrations (``migrations/``), the artifact store
with atomic, sha256-checked writes on a folder (:mod:`.artifacts`) or an S3 bucket
(:mod:`.s3`), chosen by URL (:mod:`.location`), the Huey job queue with JSON
messages (:mod:`.queue`), and the JSON encoder of what mlserve writes (:mod:`.jsoncodec`).

The bottom of the package with ``settings`` and ``errors``: may import only those two.
"""
