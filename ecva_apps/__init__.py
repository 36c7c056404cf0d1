"""The two apps over ``ecva_core``: the Streamlit explorer and the Gradio chat app.

They draw what the library computes. The library never imports them; ``ecva serve`` reaches them
through the ``ecva.commands`` entry point that this package declares.
"""
