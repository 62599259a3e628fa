"""Margin's entry point: ``streamlit run streamlit_app.py``. A router only; pages do the work."""

import streamlit as st

st.set_page_config(page_title="Margin", layout="wide")
st.navigation(
    [
        st.Page("pages/ask.py", title="Ask", icon=":material/question_answer:", default=True),
        st.Page("pages/library.py", title="Library", icon=":material/library_books:"),
        st.Page("pages/matrix.py", title="Matrix", icon=":material/grid_on:"),
        st.Page("pages/templates.py", title="Templates", icon=":material/edit_note:"),
        st.Page("pages/settings.py", title="Settings", icon=":material/settings:"),
    ]
).run()
