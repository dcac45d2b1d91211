"""The embedded synthetic domain pair: procedural street scenes rendered in a "game" (source) and a "city"
(target) style, written in the real GTA5 and Cityscapes layouts.

    layout   the codes a rendered pixel holds, SceneLayout, Street (the types)
    canvas   the z-buffer scenes are ray-cast into
    objects  trees, vehicles, people, bicycles, poles, lights and signs
    scene    street layout and placement: sample_scene
    style    each domain's appearance: render_appearance
    pair     writing the pair to disk: ensure_synthetic_pair (``python -m cyclesem.data.synthetic``)
"""
