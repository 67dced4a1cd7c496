"""Rule fingerprint: the content stamp of a model, benchmark or image folder."""

import sys

sys.path.insert(0, f"{snakemake.scriptdir}/../workflow")  # the checkout's package, in any env

from hyperface.runtime import setup_job
from hyperface.storage.lineage import DigestCache
from hyperface.storage.stamps import stamp

setup_job(snakemake.log[0])
p = snakemake.params
digests = DigestCache(f"{p.folder}/digests.json")
stamp(snakemake.input[0], p.folder, digests, built=p.built)
digests.save()
