httprequest.addHeader('Authorization', 'Bearer ' + metadata.account.access token); httprequest.addHeader('Content-Type', 'application/json');
let baseURL = 'https://na73.salesforce.com/services/data/v22.0/sobjects/'; 
let url = baseURL + "Opportunity/" + metadata.parameters["Opportunity ID"]
+ "?_HttpMethod=PATCH" let req = JSON.stringify({ 
      "StageName" : metadata.parameters["Stage Name"]
});
let res = httprequest.post(url, req); DOMO.log(res); 
var result = JSON.stringify({
      "status": httprequest.getStatusCode() 
});
datagrid.addColumn('Response', datagrid.DATA_TYPE_STRING); 
datagrid.addCell(result);
datagrid.endRow();
