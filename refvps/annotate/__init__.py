"""SAM2-assisted annotation of Ref-VPS clips: ingest, workspace, backends, web app, export."""
