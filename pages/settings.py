"""Settings: what Margin is connected to. Secrets are never shown, only whether they are set."""

from urllib.parse import urlsplit, urlunsplit

import streamlit as st

from pages import _ui as ui

ui.routed("settings")

svc = ui.service()
cfg = svc.settings


def safe_url(url: str) -> str:
    """The URL without credentials, query or fragment (which may carry keys)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[-1], query="", fragment=""))


def is_set(secret: object) -> str:
    return "set" if secret else "not set"


st.title("Settings")
st.caption(
    "Configure with environment variables or `.streamlit/secrets.toml` "
    "(see `.streamlit/secrets.toml.example`); restart the app after changing them."
)

st.subheader("Language model")
if svc.chat is None:
    st.info("No LLM configured: answers are the most relevant passages (extractive mode).")
else:
    endpoint = safe_url(cfg.openai_base_url) if cfg.openai_base_url else "OpenAI (default)"
    st.markdown(f"Model **{svc.chat.name}** at `{endpoint}`")
    if st.button("Test connection", icon=":material/network_check:"):
        try:
            st.success(svc.chat.health())
        except Exception as exc:
            ui.show_error(exc)
st.markdown(f"OPENAI_API_KEY: **{is_set(cfg.openai_api_key)}**")

st.subheader("Retrieval")
store = (
    f"Qdrant server `{safe_url(cfg.qdrant_url)}`"
    if cfg.qdrant_url
    else f"embedded, in `{cfg.data_dir / 'qdrant'}`"
)
rows = {
    "Embedding model": f"`{svc.embedder.name}` ({svc.embedder.dim} dimensions)",
    "Vector store": store,
    "QDRANT_API_KEY": is_set(cfg.qdrant_api_key),
    "Passages per question": cfg.top_k,
    "Chunk size": f"{cfg.chunk_tokens} tokens ({cfg.chunk_overlap} overlap)",
    "Context window": f"{cfg.context_window} tokens ({cfg.answer_tokens} for the answer)",
}
st.markdown("\n".join(f"- {name}: **{value}**" for name, value in rows.items()))
if st.button("Test embeddings", icon=":material/network_check:"):
    try:
        st.success(svc.embedder.health())
    except Exception as exc:
        ui.show_error(exc)

st.subheader("Storage")
st.markdown(f"Data folder: `{cfg.data_dir}`")
if cfg.public:
    st.markdown(
        "Workspace: **private to this browser session**. Bookmark this page's URL to come back "
        "to your papers; anyone with the URL sees them too."
    )
else:
    st.markdown(f"Workspace: `{svc.workspace}`")
