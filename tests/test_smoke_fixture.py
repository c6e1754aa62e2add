def test_fixtures_register_models(diabetes_model, iris_model, client):
    assert diabetes_model["version"]["metrics"]["r2"] > 0.3
    assert iris_model["version"]["signature"]["output"]["classes"] == ["setosa", "versicolor", "virginica"]
    body = client.post("/api/v1/models/iris/predict", json={"instances": [{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, "petal width (cm)": 0.2}]}).get_json()
    assert body["predictions"] == ["setosa"], body
