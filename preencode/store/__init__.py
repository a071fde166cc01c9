"""The output format of pre-encoded data, on disk and in S3: the only code that names its files, writes and reads them.

* :mod:`~preencode.store.names` — every file name and constant (ids, suffixes, shards, temporaries);
* :mod:`~preencode.store.atomic` — :func:`~preencode.store.atomic.atomic_write`, used by every writer;
* :mod:`~preencode.store.meta` — :class:`~preencode.store.meta.LatentMeta`, the per-sample ``<id>.json``;
* :mod:`~preencode.store.details` — the tree's details file (read once, format version checked);
* :mod:`~preencode.store.sample`, :mod:`~preencode.store.writer`, :mod:`~preencode.store.shards` — writing
  samples as loose ``.npy`` files or WebDataset shards behind one protocol
  (:class:`~preencode.store.writer.SampleWriter`);
* :mod:`~preencode.store.reader` — the one reader (records, byte offsets, trees) used by ``inspect``,
  ``verify``, ``decode``, resume and the training index (:mod:`~preencode.store.index`);
* :mod:`~preencode.store.layout`, :mod:`~preencode.store.logs` — what the encode engine needs of a tree:
  what is done, leftovers, the manifest and the failure logs;
* :mod:`~preencode.store.manifest`, :mod:`~preencode.store.supersede` — the manifest's typed entries (which input
  an id stands for, which stored copy is current after ``--update``) and removing superseded or pruned copies;
* :mod:`~preencode.store.ownership`, :mod:`~preencode.store.lock`, :mod:`~preencode.store.resume` — whose
  folder an output is (only our names are ever deleted), one run per output, and the cheap checks of
  what a resume skips.
* :mod:`~preencode.store.objects` — trees in S3: :class:`~preencode.store.objects.ObjectPath` (the part of
  ``pathlib`` the readers use), objects written as one commit (PUT, or a completed multipart upload);
* :mod:`~preencode.store.s3_client` — the S3 client (endpoint, profile, credentials, for inputs too) and bounded
  retries ending in :class:`~preencode.errors.StorageError`.

Nothing here imports torch.
"""
