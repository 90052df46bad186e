"""Settings of the chaos run's child processes: the project's own, with a cheap password hash.

HTTP Basic checks the password on every request. At PBKDF2's default million rounds that is a
quarter of a CPU second per request, which on a 2-core machine turns the chaos load into a queue
and the cancel timings around each deadline into noise. Everything else is read from the same
environment by the project's settings module, unchanged.
"""

from oneclick_project.settings import *  # noqa: F403

PASSWORD_HASHERS = ["devtools.chaos.hashers.FastPBKDF2PasswordHasher"]
