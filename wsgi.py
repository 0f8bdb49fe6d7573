from webapp import create_app, logs

app = create_app()
logs.configure(app.config["LOG_FORMAT"])
