"""Margin's entry point: ``streamlit run streamlit_app.py``. A router only; pages do the work."""

import streamlit as st

st.set_page_config(page_title="Margin", layout="wide")
PAGES = {
    "ask": st.Page("pages/ask.py", title="Ask", icon=":material/question_answer:", default=True),
    "library": st.Page("pages/library.py", title="Library", icon=":material/library_books:"),
    "matrix": st.Page("pages/matrix.py", title="Matrix", icon=":material/grid_on:"),
    "templates": st.Page("pages/templates.py", title="Templates", icon=":material/edit_note:"),
    "settings": st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
}
st.session_state["margin_routed"] = True  # see pages/_ui.py: routed()
page = st.navigation(list(PAGES.values()))
goto = st.query_params.get("goto")
if goto is not None:
    del st.query_params["goto"]
    if goto in PAGES:
        st.switch_page(PAGES[goto], query_params=st.query_params.to_dict())
page.run()
