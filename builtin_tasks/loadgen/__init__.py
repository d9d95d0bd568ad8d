"""Load-generation machinery shared by the ``http`` and ``grpc`` tasks.

* :mod:`.stats`: counts and HDR histograms of one run, mergeable and serialisable;
* :mod:`.metrics`: a measured run -> Iter8's ``<prefix>/...`` metrics and the task record;
* :mod:`.pacing`: the open-loop schedule (request *i* is due at ``t0 + phase + i / qps``);
* :mod:`.progress`: the progress line on a terminal;
* :mod:`.checks`: input checks both tasks' validators call.

Each protocol keeps its own client loop (the hot path differs too much to share); what is measured,
how it is paced, merged, named and shown is the same for every protocol.
"""
