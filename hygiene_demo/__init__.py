"""The demo and test registry: an embedded ECR seeded like the lab's, and ``hygiene demo``.

Not part of the production job: nothing in the ``hygiene`` package imports this one
(``hygiene demo`` imports it when it runs), and moto, which it needs, is the optional
``demo`` extra (``python -m pip install 'registry-hygiene[demo]'``).

- :mod:`hygiene_demo.registry`: the embedded ECR (moto's server on loopback).
- :mod:`hygiene_demo.lab`: the lab-shaped registry's layout and its pure planning, with
  :mod:`hygiene_demo.planner` (manifests, builds, tags, pulls) and
  :mod:`hygiene_demo.mediatypes`.
- :mod:`hygiene_demo.manifest`: what was seeded, as plain data (``SeedManifest``).
- :mod:`hygiene_demo.seed`: writes the planned registry into moto's backend.
- :mod:`hygiene_demo.run`: seeds the registry and runs the nightly and weekly jobs on it.
"""
