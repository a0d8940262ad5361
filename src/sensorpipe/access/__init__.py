"""Reading a written dataset: ``sensorpipe.open()`` (:mod:`.dataset`), the record decoder (:mod:`.decode`),
filters and resumable streaming, and the framework loaders :mod:`.torch`, :mod:`.grain` and :mod:`.tfdata`
(import them directly; each needs its extra, and none is imported by ``import sensorpipe``)."""
