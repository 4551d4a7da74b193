"""Helpers more than one measurement kind uses: binding to a link, endpoints, HTTP framing."""
