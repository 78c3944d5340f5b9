"""Scene synthesis: a parsed prompt -> a layout (``layout``) -> a composed canvas (``compose``) -> a verdict on
every object and relation (``verify``), repaired by the scene director (``artdirector.agents.scene``)."""
