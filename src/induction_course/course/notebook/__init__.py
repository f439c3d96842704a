"""What a chapter's cells call besides the library: runtime setup, links, views, HTML export."""
